# The one place the package version lives: hatch reads it for the wheel, the wrapper for its
# user agent and `verbex --version`. `make update-spec` bumps it by semver (see CHANGELOG.md).
__version__ = "0.1.0"
