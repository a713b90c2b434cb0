"""Engram as a service: the REST API (``rest.create_app``), API keys bound to scopes (``keys``,
``auth``), and the MCP server (``mcp``). Importing this package pulls in no web framework;
``engram.Client`` (``engram.client``) is the matching Python client."""
