"""Engine throughput against scikit-learn's SGD: ``python benchmarks/engine.py [--quick]``.

A thin wrapper around :func:`convstudy.bench.main` (also ``convstudy bench``); see that module
for what is measured.
"""

import sys

from convstudy.bench import main

if __name__ == "__main__":
    sys.exit(main())
