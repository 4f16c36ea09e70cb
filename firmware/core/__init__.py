"""Channels, bridging, call routing, dial plan and number normalization."""
