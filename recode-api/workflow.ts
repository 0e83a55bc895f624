// The collection workflow: which event moves a record from which state to
// which. One table; the store applies it to every record of an event or to
// none of them.

export type WorkflowState = 'registered' | 'acquired' | 'accessioned' | 'on-loan' | 'deaccessioned';
export type EventType = 'acquisition' | 'accession' | 'loan' | 'return' | 'deaccession';

export const WORKFLOW: Readonly<Record<EventType, { from: readonly WorkflowState[]; to: WorkflowState }>> = {
  acquisition: { from: ['registered'], to: 'acquired' },
  accession: { from: ['registered', 'acquired'], to: 'accessioned' },
  loan: { from: ['accessioned'], to: 'on-loan' },
  return: { from: ['on-loan'], to: 'accessioned' },
  deaccession: { from: ['registered', 'acquired', 'accessioned'], to: 'deaccessioned' },
};

export const EVENT_TYPES = Object.keys(WORKFLOW) as EventType[];

/** Why `type` may not apply to a record in `state`, or undefined when it may. */
export function refusal(type: EventType, state: WorkflowState): string | undefined {
  if (WORKFLOW[type].from.includes(state)) return undefined;
  if (state === 'deaccessioned') return `a deaccessioned specimen cannot take a ${type}`;
  if (type === 'return') return `only a specimen on loan can be returned; this one is ${state}`;
  if (state === 'on-loan') return `the specimen is on loan; return it before a ${type}`;
  return `a ${type} needs the specimen ${WORKFLOW[type].from.join(' or ')}; it is ${state}`;
}
