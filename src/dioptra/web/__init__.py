"""The web interface: server-rendered page shells whose scripts call the public API."""
