"""Reference implementations for handling a user's Anthropic API key in a web application.

Each pattern of the suite lives in its own module (see ``docs/`` and the notebooks); this
package root only exposes the few names that every pattern shares.
"""

from patterns.errors import PatternError
from patterns.keys import ApiKey, demo_key

__all__ = ["ApiKey", "PatternError", "__version__", "demo_key"]

__version__ = "0.1.0"
