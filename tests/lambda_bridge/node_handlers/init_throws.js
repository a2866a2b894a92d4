const table = process.env.TABLE_NAME;
if (!table) {
  throw new Error('TABLE_NAME is not set');
}
exports.handler = async () => ({ table });
