"""Tests of the gateway server (`ax serve`)."""
