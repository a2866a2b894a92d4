def lambda_handler(event, context):
    return {"SchemaVersion": "1.0", "Actions": [], "style": "lambda"}
