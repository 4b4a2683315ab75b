"""The op library: importing this package fills the IR's op registry."""

from .elementwise import *  # noqa: F401,F403
from .reduce import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from .special import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
