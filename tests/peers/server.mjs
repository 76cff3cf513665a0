// @tus/server with @tus/file-store, for tests/upload: a tus server nobody here wrote.
// node server.mjs --dir DIR [--port N] [--max-size BYTES] [--cert F --key F --ca F]
// With --cert it serves https and requires a client certificate signed by --ca (mutual
// TLS, as the project's ingest does). Prints {"port": N} on stdout once listening.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { parseArgs } from 'node:util';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    port: { type: 'string', default: '0' },
    'max-size': { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    ca: { type: 'string' },
  },
});

// relativeLocation: behind node's https, @tus/server 2.4 would otherwise answer with an
// http:// Location, which the camera refuses (another origin: never downgrade to plain http).
const tus = new Server({
  path: '/files',
  relativeLocation: true,
  datastore: new FileStore({ directory: values.dir }),
  maxSize: values['max-size'] ? Number(values['max-size']) : undefined,
});
const handler = (req, res) => tus.handle(req, res);
const server = values.cert
  ? https.createServer(
      {
        cert: fs.readFileSync(values.cert),
        key: fs.readFileSync(values.key),
        ca: fs.readFileSync(values.ca),
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
      },
      handler,
    )
  : http.createServer(handler);
server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
