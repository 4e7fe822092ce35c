// The ceiling: a bare node:http server answering what the gateway answers for GET /add/6/7,
// a fresh UUID included. Plain JavaScript, no framework, no loader. Usage: node bare-server.mjs PORT
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 0);
const server = createServer((request, response) => {
  const body = JSON.stringify({ operation: 'add', result: 6 + 7, id: randomUUID() });
  response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  response.end(body);
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`bare server listening on ${server.address().port}\n`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
