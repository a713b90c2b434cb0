"""Memory that learns from use: strength and forgetting (``strength``, ``feedback``), the profile of a
scope (``profile``), experience cases (``experience``) and training data out (``training``)."""
