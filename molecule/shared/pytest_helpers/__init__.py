"""Helpers, fixtures and test cases shared by the Molecule scenarios' testinfra tests.

Each scenario's tests/conftest.py puts molecule/shared on sys.path and imports from
here; none of these modules is named test_*.py, so pytest never collects this
directory by itself. Fixtures imported into a conftest.py and test functions imported
into a test module are collected there, as if written in place.
"""

import pkgutil

import pytest

# Rewrite the asserts of the modules below as pytest does a test module's (this
# package's own __init__ is already imported, so name each module).
pytest.register_assert_rewrite(*(f"{__name__}.{module.name}" for module in pkgutil.iter_modules(__path__)))
