// A TypeScript SIP media application handler in several files (bundled by chimevoice with esbuild).
import { appendFileSync } from 'fs';
import { join } from 'path';
import type { ChimeEvent, ChimeResponse } from './lib/types';
import { greet } from './lib/actions';

export const handler = async (event: ChimeEvent): Promise<ChimeResponse> => {
  appendFileSync(join(process.env.EVENTS_DIR!, `${process.env.AWS_LAMBDA_FUNCTION_NAME}.jsonl`),
    `${JSON.stringify(event)}\n`);
  if (event.InvocationEventType === 'NEW_INBOUND_CALL') {
    return { SchemaVersion: '1.0', Actions: greet(event.CallDetails.Participants[0].CallId) };
  }
  return { SchemaVersion: '1.0', Actions: [] };
};
