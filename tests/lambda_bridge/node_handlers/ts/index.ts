// A TypeScript handler in several files: bundled with esbuild before it runs.
import type { ChimeEvent, ChimeResponse } from './lib/types';
import { playAudio, hangup } from './lib/actions';

export const handler = async (event: ChimeEvent): Promise<ChimeResponse> => {
  switch (event.InvocationEventType) {
    case 'NEW_INBOUND_CALL':
      return { SchemaVersion: '1.0', Actions: [playAudio('welcome.wav')] };
    case 'ACTION_SUCCESSFUL':
      return { SchemaVersion: '1.0', Actions: [hangup()] };
    default:
      return { SchemaVersion: '1.0', Actions: [] };
  }
};

export const explode = async (): Promise<ChimeResponse> => {
  throw new Error('thrown in TypeScript');
};
