"""KKP readiness suite: proves, requirement by requirement, that a site is ready for KKP."""

__version__ = "0.1.0"
