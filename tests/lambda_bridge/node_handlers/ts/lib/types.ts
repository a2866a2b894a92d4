export interface ChimeEvent {
  SchemaVersion: string;
  Sequence: number;
  InvocationEventType: string;
  CallDetails?: Record<string, unknown>;
}

export interface Action {
  Type: string;
  Parameters: Record<string, unknown>;
}

export interface ChimeResponse {
  SchemaVersion: '1.0';
  Actions: Action[];
}
