/* Optional compiled speed-up for trio_ws.masking: XOR a payload with a
 * 4-byte WebSocket masking key (RFC 6455 §5.3). The pure-Python fallback in
 * masking.py gives the same result; this one runs at memory speed. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *
apply_mask(PyObject *self, PyObject *args)
{
    Py_buffer data, key;
    if (!PyArg_ParseTuple(args, "y*y*", &data, &key)) {
        return NULL;
    }
    if (key.len != 4) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "masking key must be 4 bytes");
        return NULL;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&key);
        return NULL;
    }
    const unsigned char *in = (const unsigned char *)data.buf;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    const unsigned char *k = (const unsigned char *)key.buf;
    Py_ssize_t n = data.len, i = 0;
    uint64_t wide;
    unsigned char pattern[8] = {k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]};
    memcpy(&wide, pattern, 8);
    Py_BEGIN_ALLOW_THREADS
    for (; i + 8 <= n; i += 8) {
        uint64_t chunk;
        memcpy(&chunk, in + i, 8);
        chunk ^= wide;
        memcpy(out + i, &chunk, 8);
    }
    for (; i < n; i++) {
        out[i] = in[i] ^ k[i & 3];
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&key);
    return result;
}

static PyMethodDef methods[] = {
    {"apply_mask", apply_mask, METH_VARARGS, "XOR data with a 4-byte masking key."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "trio_ws._speedups", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
