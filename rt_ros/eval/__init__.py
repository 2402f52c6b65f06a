"""Closed-loop evaluation: episodes through the policy node and the simulated driver, tables and
plots."""
