"""Where models run: device profiles, isolated runtimes, validation and profiling."""
