"""Offline stand-in for @rules_cc//cc:cc_binary.bzl (newer TF Serving BUILD files load it)."""

cc_binary = native.cc_binary
