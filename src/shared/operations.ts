/** The operations calcmesh serves, their default ports and their rpc names on the wire. */

export const ARITHMETIC_OPS = ['add', 'subtract', 'multiply', 'divide'] as const;
export type ArithmeticOp = (typeof ARITHMETIC_OPS)[number];

export const SERVICE_OPS = [...ARITHMETIC_OPS, 'evaluate'] as const;
export type ServiceOp = (typeof SERVICE_OPS)[number];

/** The original system's ports for add, subtract and multiply; the rest continue the sequence. */
export const DEFAULT_PORTS: Readonly<Record<ServiceOp, number>> = {
  add: 50051,
  subtract: 50052,
  multiply: 50053,
  divide: 50054,
  evaluate: 50055,
};

export const RPC_NAMES: Readonly<Record<ServiceOp, string>> = {
  add: 'Add',
  subtract: 'Subtract',
  multiply: 'Multiply',
  divide: 'Divide',
  evaluate: 'Evaluate',
};

export const isArithmeticOp = (value: string): value is ArithmeticOp =>
  (ARITHMETIC_OPS as readonly string[]).includes(value);

export const isServiceOp = (value: string): value is ServiceOp =>
  (SERVICE_OPS as readonly string[]).includes(value);
