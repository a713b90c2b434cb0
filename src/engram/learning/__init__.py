"""Memory that learns from use: strength and forgetting (``strength``, ``feedback``), the profile of a
scope (``profile``), experience cases (``experience``) and training data out (``training``)."""

#: Default token budget of a profile (tokens = characters / 4); here so that ``Memory`` can name it
#: without importing the profile code.
DEFAULT_PROFILE_TOKENS = 300
