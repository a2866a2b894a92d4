export interface Participant {
  CallId: string;
  ParticipantTag: string;
}

export interface ChimeEvent {
  InvocationEventType: string;
  CallDetails: { TransactionId: string; Participants: Participant[] };
}

export interface Action {
  Type: 'Pause' | 'PlayAudio' | 'Hangup';
  Parameters: Record<string, unknown>;
}

export interface ChimeResponse {
  SchemaVersion: '1.0';
  Actions: Action[];
}
