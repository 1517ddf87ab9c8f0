# The project's own checkov checks (CKV_TENANTRY_*), loaded with --external-checks-dir.
