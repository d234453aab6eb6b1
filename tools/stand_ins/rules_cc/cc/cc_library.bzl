"""Offline stand-in for @rules_cc//cc:cc_library.bzl (newer TF Serving BUILD files load it)."""

cc_library = native.cc_library
