/**
 * The XML-RPC client against recorded OpenNebula replies, served by undici's MockAgent (nock does
 * not see undici's own request()). Replies follow OpenNebula's: CRLF-separated
 * envelopes, 3-value success, 5-value failure ending in an <i8>, and xmlrpc-c <fault>s.
 */
import { MockAgent } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  decodeMethodResponse,
  double,
  encodeMethodCall,
  i8,
  ONE_ERROR_CODES,
  parseXml,
  text,
  textAt,
  XmlRpcClient,
  XmlRpcError,
} from '../../agents/computing-elements/xmlrpc.js';

const ORIGIN = 'https://one.example.org:2633';
const ENDPOINT = `${ORIGIN}/RPC2`;

const envelope = (values: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\r\n<methodResponse>\r\n<params>\r\n<param><value><array><data>\r\n${values}\r\n</data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n`;
const success = (value: string) => envelope(`<value><boolean>1</boolean></value>\r\n${value}\r\n<value><i4>0</i4></value>`);
const failure = (message: string, code: number, id = -1) =>
  envelope(
    `<value><boolean>0</boolean></value>\r\n<value><string>${message}</string></value>\r\n<value><i4>${code}</i4></value>\r\n<value><i4>${id}</i4></value>\r\n<value><i8>0</i8></value>`,
  );
const fault = (code: number, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\r\n<methodResponse>\r\n<fault><value><struct>\r\n<member><name>faultCode</name>\r\n<value><i4>${code}</i4></value></member>\r\n<member><name>faultString</name>\r\n<value><string>${message}</string></value></member>\r\n</struct></value></fault>\r\n</methodResponse>\r\n`;

const VM_XML =
  '&lt;VM&gt;&lt;ID&gt;42&lt;/ID&gt;&lt;NAME&gt;&lt;![CDATA[wms-pilot-abc &amp; co]]&gt;&lt;/NAME&gt;&lt;STATE&gt;3&lt;/STATE&gt;&lt;LCM_STATE&gt;3&lt;/LCM_STATE&gt;' +
  '&lt;TEMPLATE&gt;&lt;CONTEXT&gt;&lt;DIRAC_PILOT_STAMP&gt;&lt;![CDATA[abc]]&gt;&lt;/DIRAC_PILOT_STAMP&gt;&lt;/CONTEXT&gt;&lt;/TEMPLATE&gt;&lt;/VM&gt;';

let agent: MockAgent;
let client: XmlRpcClient;
const pool = () => agent.get(ORIGIN);

beforeEach(() => {
  agent = new MockAgent();
  agent.disableNetConnect();
  client = new XmlRpcClient({ endpoint: ENDPOINT, dispatcher: agent, timeoutMs: 2000 });
});
afterEach(async () => {
  await agent.close();
});

function reply(xml: string, status = 200, onBody?: (body: string) => void) {
  pool()
    .intercept({
      path: '/RPC2',
      method: 'POST',
      body: (b: string) => {
        onBody?.(b);
        return true;
      },
    })
    .reply(status, xml, { headers: { 'content-type': 'text/xml' } });
}

describe('encodeMethodCall', () => {
  it('encodes every scalar type, arrays, structs, and escapes text', () => {
    const xml = encodeMethodCall('one.vm.allocate', [
      'u:p<&>',
      7,
      -2,
      i8(2 ** 40),
      12345678901234567890n,
      true,
      false,
      double(2),
      1.5,
      [1, ['x']],
      { a: 1, 'b&': { c: false } },
    ]);
    expect(xml).toContain('<methodName>one.vm.allocate</methodName>');
    expect(xml).toContain('<value><string>u:p&lt;&amp;&gt;</string></value>');
    expect(xml).toContain('<value><int>7</int></value>');
    expect(xml).toContain('<value><int>-2</int></value>');
    expect(xml).toContain(`<value><i8>${2 ** 40}</i8></value>`);
    expect(xml).toContain('<value><i8>12345678901234567890</i8></value>');
    expect(xml).toContain('<value><boolean>1</boolean></value>');
    expect(xml).toContain('<value><boolean>0</boolean></value>');
    expect(xml).toContain('<value><double>2</double></value>');
    expect(xml).toContain('<value><double>1.5</double></value>');
    expect(xml).toContain(
      '<value><array><data><value><int>1</int></value><value><array><data><value><string>x</string></value></data></array></value></data></array></value>',
    );
    expect(xml).toContain(
      '<member><name>b&amp;</name><value><struct><member><name>c</name><value><boolean>0</boolean></value></member></struct></value></member>',
    );
    // what we send, we read back
    const back = parseXml(xml);
    expect(back.name).toBe('methodCall');
  });

  it('refuses what XML-RPC cannot carry', () => {
    expect(() => encodeMethodCall('bad name', [])).toThrow(/method name/);
    expect(() => encodeMethodCall('m', [Number.NaN])).toThrow(/cannot carry/);
  });
});

describe('parseXml', () => {
  it('decodes entities, character references and CDATA', () => {
    const el = parseXml(
      '<?xml version="1.0"?><!-- c --><A x="1 &amp; 2"><B>a &lt;b&gt; &#65;&#x42; &quot;q&quot; &apos;</B><C><![CDATA[<raw> & ]]]]><![CDATA[>]]></C><D/></A>',
    );
    expect(el.attributes['x']).toBe('1 & 2');
    expect(textAt(el, 'B')).toBe('a <b> AB "q" \'');
    expect(textAt(el, 'C')).toBe('<raw> & ]]>');
    expect(textAt(el, 'D')).toBe('');
    expect(textAt(el, 'E')).toBeUndefined();
  });

  it('refuses DOCTYPE (no entity expansion), unknown entities and malformed documents', () => {
    expect(() => parseXml('<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')).toThrow(/DOCTYPE/);
    expect(() => parseXml('<a>&x;</a>')).toThrow(/unknown entity/);
    expect(() => parseXml('<a>1 & 2</a>')).toThrow(/bare '&'/);
    expect(() => parseXml('<a><b></a></b>')).toThrow(/does not close/);
    expect(() => parseXml('<a>')).toThrow(/not closed/);
    expect(() => parseXml('<a/><b/>')).toThrow(/second root/);
    expect(() => parseXml('<a>'.repeat(300) + '</a>'.repeat(300))).toThrow(/deeper/);
  });
});

describe('decodeMethodResponse', () => {
  it('reads i8 (beyond 2^53 as bigint), nested arrays and structs, bare text, nil, double', () => {
    const xml =
      '<methodResponse><params><param><value><struct>' +
      '<member><name>small</name><value><i8>5</i8></value></member>' +
      '<member><name>big</name><value><i8>9223372036854775807</i8></value></member>' +
      '<member><name>ex</name><value><ex:i8>-3</ex:i8></value></member>' +
      '<member><name>bare</name><value>plain text</value></member>' +
      '<member><name>nil</name><value><nil/></value></member>' +
      '<member><name>d</name><value><double>-0.25</double></value></member>' +
      '<member><name>nested</name><value><array><data><value><array><data><value><int>1</int></value><value><struct><member><name>k</name><value><string>v</string></value></member></struct></value></data></array></value><value><boolean>1</boolean></value></data></array></value></member>' +
      '</struct></value></param></params></methodResponse>';
    const r = decodeMethodResponse(xml);
    expect(r).toEqual({
      ok: true,
      value: { small: 5, big: 9223372036854775807n, ex: -3, bare: 'plain text', nil: null, d: -0.25, nested: [[1, { k: 'v' }], true] },
    });
  });

  it('reads a fault', () => {
    expect(decodeMethodResponse(fault(-501, 'Type mismatch'))).toEqual({ ok: false, faultCode: -501, faultString: 'Type mismatch' });
  });

  it('refuses a 32-bit int out of range and unknown types', () => {
    expect(() =>
      decodeMethodResponse('<methodResponse><params><param><value><i4>99999999999</i4></value></param></params></methodResponse>'),
    ).toThrow(/beyond 32 bits/);
    expect(() => decodeMethodResponse('<methodResponse><params><param><value><blob/></value></param></params></methodResponse>')).toThrow(
      /unknown type/,
    );
  });
});

describe('XmlRpcClient.callOne (OpenNebula replies)', () => {
  it('sends the session first, with typed params, and reads a new VM id', async () => {
    let sent = '';
    reply(success('<value><i4>42</i4></value>'), 200, (b) => (sent = b));
    expect(await client.callOne('one.vm.allocate', 'oneadmin:secret', ['NAME = "x"', false])).toBe(42);
    expect(sent).toContain(
      '<methodName>one.vm.allocate</methodName><params><param><value><string>oneadmin:secret</string></value></param><param><value><string>NAME = "x"</string></value></param><param><value><boolean>0</boolean></value></param></params>',
    );
  });

  it('reads a VM document carried as an entity-escaped string, then parses it', async () => {
    reply(success(`<value><string>${VM_XML}</string></value>`));
    const doc = await client.callOne('one.vm.info', 's', [42]);
    expect(typeof doc).toBe('string');
    const vm = parseXml(doc as string);
    expect(textAt(vm, 'ID')).toBe('42');
    expect(textAt(vm, 'NAME')).toBe('wms-pilot-abc & co');
    expect(textAt(vm, 'TEMPLATE/CONTEXT/DIRAC_PILOT_STAMP')).toBe('abc');
  });

  it('names the method and the endpoint on a failure reply', async () => {
    reply(failure("[one.vm.allocate] User couldn't be authenticated, aborting call.", 256));
    const err = (await client.callOne('one.vm.allocate', 'bad:pw', ['x']).catch((e) => e)) as XmlRpcError;
    expect(err).toBeInstanceOf(XmlRpcError);
    expect(err.message).toBe(
      `one.vm.allocate at ${ENDPOINT}: [AUTHENTICATION] [one.vm.allocate] User couldn't be authenticated, aborting call.`,
    );
    expect(err.kind).toBe('one');
    expect(err.details).toMatchObject({ oneCode: 256, oneCodeName: 'AUTHENTICATION', objectId: -1 });
    expect(err.retryable).toBe(false);
  });

  const codes: [keyof typeof ONE_ERROR_CODES, number, string, boolean][] = [
    ['AUTHENTICATION', 0x0100, "User couldn't be authenticated", false],
    ['AUTHORIZATION', 0x0200, 'Not authorized to perform MANAGE VM [42]', false],
    ['NO_EXISTS', 0x0400, 'Error getting virtual machine [42].', false],
    ['ACTION', 0x0800, 'Error performing action "terminate-hard": wrong state', true],
    ['XML_RPC_API', 0x1000, 'Incorrect filter_flag for state', false],
    ['INTERNAL', 0x2000, 'Error inserting VM in the database', true],
    ['ALLOCATE', 0x4000, 'limit of 4 reached for VMS quota', false],
    ['LOCKED', 0x8000, 'The resource is locked', true],
  ];
  it.each(codes)('maps error code %s (%i)', async (name, code, message, retryable) => {
    reply(failure(message, code, 42));
    const err = (await client.callOne('one.vm.action', 's', ['terminate-hard', 42]).catch((e) => e)) as XmlRpcError;
    expect(err.message).toBe(`one.vm.action at ${ENDPOINT}: [${name}] ${message}`);
    expect(err.details).toMatchObject({ oneCode: code, oneCodeName: name, objectId: 42 });
    expect(err.retryable).toBe(retryable);
  });

  it('parses by position: a 4-value failure (no i8) and an unknown code still read', async () => {
    reply(
      envelope(
        '<value><boolean>0</boolean></value><value><string>odd</string></value><value><i4>4242</i4></value><value><i4>7</i4></value>',
      ),
    );
    const err = (await client.callOne('one.vm.info', 's', [7]).catch((e) => e)) as XmlRpcError;
    expect(err.message).toBe(`one.vm.info at ${ENDPOINT}: [CODE_4242] odd`);
  });

  it('turns an XML-RPC fault into an error naming the method and endpoint', async () => {
    reply(fault(-501, 'Type mismatch: expected int'));
    const err = (await client.callOne('one.vm.info', 's', ['42']).catch((e) => e)) as XmlRpcError;
    expect(err.kind).toBe('fault');
    expect(err.message).toBe(`one.vm.info at ${ENDPOINT}: XML-RPC fault -501: Type mismatch: expected int`);
    expect(err.details.faultCode).toBe(-501);
  });

  it('reports HTTP 500 as retryable', async () => {
    reply('Internal Server Error', 500);
    const err = (await client.callOne('one.vmpool.info', 's', [-3, -1, -1, -1]).catch((e) => e)) as XmlRpcError;
    expect(err.kind).toBe('http');
    expect(err.message).toBe(`one.vmpool.info at ${ENDPOINT}: HTTP 500: Internal Server Error`);
    expect(err.retryable).toBe(true);
  });

  it('reports a reply that is not XML-RPC', async () => {
    reply('<html>proxy error</html>');
    const err = (await client.callOne('one.vm.info', 's', [1]).catch((e) => e)) as XmlRpcError;
    expect(err.kind).toBe('protocol');
    expect(err.message).toMatch(/^one\.vm\.info at https:\/\/one\.example\.org:2633\/RPC2: unreadable reply/);
  });

  it('reports a reply that is not the [ok, value, code] array', async () => {
    reply('<methodResponse><params><param><value><string>hello</string></value></param></params></methodResponse>');
    await expect(client.callOne('one.vm.info', 's', [1])).rejects.toThrow(/not OpenNebula's \[ok, value, code, \.\.\.\] array/);
  });

  it('times out', async () => {
    const quick = new XmlRpcClient({ endpoint: ENDPOINT, dispatcher: agent, timeoutMs: 100 });
    pool().intercept({ path: '/RPC2', method: 'POST' }).reply(200, success('<value><i4>1</i4></value>')).delay(1000);
    const err = (await quick.callOne('one.vm.info', 's', [1]).catch((e) => e)) as XmlRpcError;
    expect(err.kind).toBe('timeout');
    expect(err.message).toBe(`one.vm.info at ${ENDPOINT}: no reply within 100 ms`);
  });

  it('reports a transport error with its cause', async () => {
    pool()
      .intercept({ path: '/RPC2', method: 'POST' })
      .replyWithError(Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:2633'), { code: 'ECONNREFUSED' }));
    const err = (await client.callOne('one.vm.info', 's', [1]).catch((e) => e)) as XmlRpcError;
    expect(err.kind).toBe('transport');
    expect(err.message).toBe(`one.vm.info at ${ENDPOINT}: cannot reach the endpoint (connect ECONNREFUSED 10.0.0.1:2633)`);
    expect(err.retryable).toBe(true);
  });

  it('call() returns the whole array for other XML-RPC peers', async () => {
    reply(success('<value><boolean>1</boolean></value>'));
    expect(await client.call('one.vm.update', ['s', 1, 'A="b"', 1])).toEqual([true, true, 0]);
    expect(text(parseXml('<a>x<b>y</b>z</a>'))).toBe('xz');
  });
});
