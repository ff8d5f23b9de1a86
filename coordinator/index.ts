/**
 * `twopc/coordinator`: run a coordinator inside a process of your own (the
 * `twopc coordinator` command does the same from the command line).
 */
export { startCoordinator } from './main.ts';
export type { RunningCoordinator, StartCoordinatorOptions } from './main.ts';
