"""Sphinx configuration for the trio_ws documentation.

Build from the project root, with the ``docs`` extra installed
(``pip install -e '.[docs]'``)::

    python -m sphinx -W -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys

# Document the checkout, not whatever copy happens to be installed.
sys.path.insert(0, os.path.abspath(".."))

project = "trio_ws"
author = "trio_ws contributors"
copyright = "trio_ws contributors"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    # sphinx.ext.intersphinx is deliberately absent: builds must work without
    # network access. sphinx.ext.viewcode is off as well.
]

# Google-style docstrings only: every public I/O method documents Args, Returns, Raises.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

autodoc_typehints = "description"
# Only add types to parameters the docstring documents; otherwise every field
# list of a docstring (Args, then the appended Keyword Args) gets its own copy.
autodoc_typehints_description_target = "documented_params"
autodoc_member_order = "bysource"

nitpicky = False

primary_domain = "py"
highlight_language = "python3"

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
html_static_path = ["_static"]

html_theme = "furo"
html_title = "trio_ws"
