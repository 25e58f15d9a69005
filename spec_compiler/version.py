"""specc's version, importable by every stage without importing the package's API."""

__version__ = "0.1.0"
