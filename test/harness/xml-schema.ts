// XML for the tests: a strict parser for the XML our tools write (elements, attributes, text,
// the five entities and numeric references, comments, one declaration; no DTDs) and a validator
// for the XML Schema subset test/fixtures/schemas/junit.xsd uses: global xs:element declarations,
// complexType (mixed or not) with one xs:sequence of xs:element refs (minOccurs/maxOccurs), and
// xs:attribute (use, type xs:string | xs:int | xs:decimal | xs:dateTime); simple-typed elements
// hold text only. Undeclared elements and attributes are errors.

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = /^[A-Za-z_][\w.:-]*/;

function decode(s: string, at: () => string): string {
  return s.replace(/&(#x[0-9A-Fa-f]+|#[0-9]+|amp|lt|gt|quot|apos|[^;]*);?/g, (m, e: string) => {
    if (!m.endsWith(";")) throw new Error(`${at()}: a bare & (write &amp;)`);
    const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
    if (e in named) return named[e];
    if (e.startsWith("#x")) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith("#")) return String.fromCodePoint(parseInt(e.slice(1), 10));
    throw new Error(`${at()}: unknown entity &${e};`);
  });
}

export function parseXML(text: string): XmlElement {
  let i = 0;
  const at = () => `offset ${i}`;
  const skipMisc = () => {
    for (;;) {
      while (/\s/.test(text[i] ?? "")) i++;
      if (text.startsWith("<!--", i)) {
        const end = text.indexOf("-->", i);
        if (end < 0) throw new Error(`${at()}: unterminated comment`);
        i = end + 3;
      } else if (text.startsWith("<?", i)) {
        const end = text.indexOf("?>", i);
        if (end < 0) throw new Error(`${at()}: unterminated declaration`);
        i = end + 2;
      } else return;
    }
  };
  if (/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u.test(text)) throw new Error("the document has characters XML 1.0 does not allow");
  if (text.includes("<!DOCTYPE")) throw new Error("DTDs are not accepted");
  const element = (): XmlElement => {
    if (text[i] !== "<") throw new Error(`${at()}: expected an element`);
    i++;
    const name = NAME.exec(text.slice(i))?.[0];
    if (!name) throw new Error(`${at()}: expected an element name`);
    i += name.length;
    const el: XmlElement = { name, attrs: {}, children: [], text: "" };
    for (;;) {
      while (/\s/.test(text[i])) i++;
      if (text.startsWith("/>", i)) {
        i += 2;
        return el;
      }
      if (text[i] === ">") {
        i++;
        break;
      }
      const an = NAME.exec(text.slice(i))?.[0];
      if (!an) throw new Error(`${at()}: expected an attribute in <${name}>`);
      i += an.length;
      if (text[i] !== "=" || (text[i + 1] !== '"' && text[i + 1] !== "'")) throw new Error(`${at()}: attribute ${an} needs ="value"`);
      const q = text[i + 1];
      const end = text.indexOf(q, i + 2);
      if (end < 0) throw new Error(`${at()}: unterminated attribute ${an}`);
      const raw = text.slice(i + 2, end);
      if (raw.includes("<")) throw new Error(`${at()}: < in attribute ${an}`);
      if (an in el.attrs) throw new Error(`${at()}: attribute ${an} twice in <${name}>`);
      el.attrs[an] = decode(raw, at);
      i = end + 1;
    }
    for (;;) {
      const lt = text.indexOf("<", i);
      if (lt < 0) throw new Error(`${at()}: <${name}> is not closed`);
      el.text += decode(text.slice(i, lt), at);
      i = lt;
      if (text.startsWith("</", i)) {
        const close = `</${name}>`;
        if (!text.startsWith(close, i)) throw new Error(`${at()}: expected ${close}`);
        i += close.length;
        return el;
      }
      if (text.startsWith("<!--", i)) {
        const end = text.indexOf("-->", i);
        i = end + 3;
        continue;
      }
      el.children.push(element());
    }
  };
  skipMisc();
  const root = element();
  skipMisc();
  if (i !== text.length) throw new Error(`${at()}: content after the root element`);
  return root;
}

interface Decl {
  mixed: boolean;
  simple: boolean;
  sequence: { ref: string; min: number; max: number }[];
  attributes: Map<string, { type: string; required: boolean }>;
}

/** The declarations of an XSD in the subset above; throws on anything else. */
export function compileXSD(xsd: string): Map<string, Decl> {
  const root = parseXML(xsd);
  if (root.name !== "xs:schema") throw new Error("not an xs:schema");
  const decls = new Map<string, Decl>();
  for (const el of root.children) {
    if (el.name !== "xs:element" || !el.attrs.name) throw new Error(`unsupported top-level ${el.name}`);
    const decl: Decl = { mixed: false, simple: false, sequence: [], attributes: new Map() };
    if (el.attrs.type) {
      if (el.attrs.type !== "xs:string") throw new Error(`unsupported element type ${el.attrs.type}`);
      decl.simple = true;
    } else {
      const ct = el.children[0];
      if (!ct || ct.name !== "xs:complexType" || el.children.length !== 1) throw new Error(`element ${el.attrs.name}: expected one xs:complexType`);
      decl.mixed = ct.attrs.mixed === "true";
      for (const c of ct.children) {
        if (c.name === "xs:sequence") {
          for (const r of c.children) {
            if (r.name !== "xs:element" || !r.attrs.ref) throw new Error(`element ${el.attrs.name}: sequence items must be xs:element ref`);
            decl.sequence.push({ ref: r.attrs.ref, min: Number(r.attrs.minOccurs ?? 1), max: r.attrs.maxOccurs === "unbounded" ? Infinity : Number(r.attrs.maxOccurs ?? 1) });
          }
        } else if (c.name === "xs:attribute") decl.attributes.set(c.attrs.name, { type: c.attrs.type ?? "xs:string", required: c.attrs.use === "required" });
        else throw new Error(`element ${el.attrs.name}: unsupported ${c.name}`);
      }
    }
    decls.set(el.attrs.name, decl);
  }
  return decls;
}

const TYPES: Record<string, RegExp> = {
  "xs:string": /^[\s\S]*$/,
  "xs:int": /^[+-]?\d{1,10}$/,
  "xs:decimal": /^[+-]?(\d+(\.\d*)?|\.\d+)$/,
  "xs:dateTime": /^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/,
};

/** Every violation of the document against the declarations, as "path: problem". */
export function validateXML(decls: Map<string, Decl>, doc: XmlElement): string[] {
  const errors: string[] = [];
  const walk = (el: XmlElement, at: string) => {
    const d = decls.get(el.name);
    if (!d) return void errors.push(`${at}: element <${el.name}> is not declared`);
    for (const [name, a] of d.attributes) {
      if (a.required && !(name in el.attrs)) errors.push(`${at}: lacks required attribute ${name}`);
    }
    for (const [name, value] of Object.entries(el.attrs)) {
      const a = d.attributes.get(name);
      if (!a) errors.push(`${at}: attribute ${name} is not declared`);
      else if (!TYPES[a.type]) throw new Error(`unsupported attribute type ${a.type}`);
      else if (!TYPES[a.type].test(value)) errors.push(`${at}: attribute ${name}=${JSON.stringify(value)} is not an ${a.type}`);
    }
    if (d.simple) {
      if (el.children.length) errors.push(`${at}: <${el.name}> holds text only`);
      return;
    }
    if (!d.mixed && el.text.trim()) errors.push(`${at}: <${el.name}> may not hold text`);
    // The children against the sequence, in order, each item within its min/max.
    let k = 0;
    for (const item of d.sequence) {
      let n = 0;
      while (k < el.children.length && el.children[k].name === item.ref && n < item.max) {
        walk(el.children[k], `${at}/${item.ref}[${n}]`);
        k++;
        n++;
      }
      if (n < item.min) errors.push(`${at}: needs at least ${item.min} <${item.ref}>`);
    }
    if (k < el.children.length) errors.push(`${at}: <${el.children[k].name}> is not allowed there (expected, in order: ${d.sequence.map((s) => s.ref).join(", ")})`);
  };
  walk(doc, doc.name);
  return errors;
}
