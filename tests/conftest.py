"""Property tests draw the same examples on every run (a fixed seed), so that a run of
the suite is reproducible; DIFFKIT_HYPOTHESIS_RANDOM=1 draws fresh ones to explore."""

import os

from hypothesis import settings

settings.register_profile("reproducible", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("DIFFKIT_HYPOTHESIS_RANDOM") else "reproducible")
