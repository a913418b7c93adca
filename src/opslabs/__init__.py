"""opslabs: DevOps knowledge base, training-site generator and lab runner."""

__version__ = "0.1.0"
