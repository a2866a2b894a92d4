import type { Action } from './types';

const bucket = (): string => process.env.PROMPT_BUCKET ?? 'prompts';

export function greet(callId: string): Action[] {
  return [
    { Type: 'Pause', Parameters: { CallId: callId, DurationInMilliseconds: '700' } },
    { Type: 'PlayAudio', Parameters: { CallId: callId, AudioSource: { Type: 'S3', BucketName: bucket(), Key: 'tone1000.wav' } } },
    { Type: 'Pause', Parameters: { CallId: callId, DurationInMilliseconds: '800' } },
    { Type: 'Hangup', Parameters: { CallId: callId, SipResponseCode: '0' } },
  ];
}
