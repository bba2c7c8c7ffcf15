export { startEmulatorUnlessConfigured } from './dev.ts';
export { startEmulator } from './emulator.ts';
export type { FlagConditionInput, FlagOptions, FlagPropertyInput } from './flag.ts';
export { flag } from './flag.ts';
export type {
  CohortDefinitions,
  CohortPropertyGroup,
  DelayFault,
  DropFault,
  EmulatorOptions,
  EndpointKind,
  Fault,
  FaultEndpoint,
  FlagCondition,
  FlagDefinition,
  FlagDefinitionInput,
  FlagFilters,
  FlagPropertyFilter,
  FlagVariant,
  GroupTypeMapping,
  PostHogEmulator,
  RecordedEvent,
  RecordedRequest,
  SetFlagsOptions,
  StatusFault,
  WaitForEventsOptions,
} from './types.ts';
