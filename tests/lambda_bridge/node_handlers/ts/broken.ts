import { nothing } from './lib/missing';
export const handler = async () => nothing;
