"""The package version, in a module of its own so any stage can read it without importing the package."""

VERSION = "0.1.0"
