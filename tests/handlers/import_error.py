# A handler module whose module-level code needs an environment variable, as many
# Lambdas do (os.environ["TABLE_NAME"]): without it the import raises KeyError.
import os

GREETING = os.environ["IMPORT_ERROR_GREETING"]


def handler(event, context):
    return {"SchemaVersion": "1.0", "Actions": []}
