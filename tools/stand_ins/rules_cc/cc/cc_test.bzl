"""Offline stand-in for @rules_cc//cc:cc_test.bzl (newer TF Serving BUILD files load it)."""

cc_test = native.cc_test
