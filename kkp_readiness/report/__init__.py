"""Report writers: results.json, pytest-html columns, Allure generation, run directories."""
