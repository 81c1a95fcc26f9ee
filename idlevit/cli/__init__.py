"""Thin argparse front ends; each console script parses flags and calls the library."""
