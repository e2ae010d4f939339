"""Closed-form predictions of convergence theory (no statistics): iteration complexity, the
noise floor of SGD on least squares, and the variance of sample means."""
