"""Human- and machine-readable reports: rich tables, JSON, (later) plots."""
