"""Offline stand-in for @rules_cc//cc:cc_import.bzl (newer TF Serving BUILD files load it)."""

cc_import = native.cc_import
