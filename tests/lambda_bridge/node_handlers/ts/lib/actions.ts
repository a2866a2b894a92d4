import type { Action } from './types';

const BUCKET: string = process.env.PROMPT_BUCKET ?? 'prompts';

export function playAudio(key: string): Action {
  return { Type: 'PlayAudio', Parameters: { AudioSource: { Type: 'S3', BucketName: BUCKET, Key: key } } };
}

export function hangup(code: number = 0): Action {
  return { Type: 'Hangup', Parameters: { SipResponseCode: String(code) } };
}
