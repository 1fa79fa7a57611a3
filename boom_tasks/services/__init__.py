"""Clients of the three servers, created lazily per process, with driver errors translated."""
