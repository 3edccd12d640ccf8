"""The HTTP server: `build_app(settings)`."""
