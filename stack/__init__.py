"""stack: one command to a production-grade observability stack."""

__version__ = "0.1.0"
