"""pb-fm-webpage backend: one registry of operations served as REST routes and MCP tools."""
