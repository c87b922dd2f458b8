"""turnout's benchmarks (`turnout bench ...`): speed and quality measured side by side in one run."""
