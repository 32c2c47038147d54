package mysql

import (
	"errors"
	"fmt"
	"strings"
)

// The DDL parser understands the statements that change the columns of a table
// (CREATE/ALTER/DROP/RENAME TABLE, TRUNCATE, DROP DATABASE) well enough to keep a
// schema history, and SHOW CREATE TABLE output, which is how tables enter the
// history in the first place. Anything else a DDL query event may hold (GRANT,
// CREATE VIEW, ...) is classified as not touching table columns.

// tokKind is the kind of a DDL token.
type tokKind uint8

const (
	tokWord   tokKind = iota // a keyword or unquoted identifier (Text as written)
	tokIdent                 // a `quoted` identifier (Text unquoted)
	tokString                // a '...' or "..." literal (Text unquoted)
	tokNumber                // a numeric literal
	tokPunct                 // one of ( ) , . ; = and any other single byte
)

type token struct {
	kind tokKind
	text string
}

// is reports whether t is the keyword w (case-insensitive; quoted identifiers never
// are keywords).
func (t token) is(w string) bool { return t.kind == tokWord && strings.EqualFold(t.text, w) }

func (t token) punct(p string) bool { return t.kind == tokPunct && t.text == p }

// tokenize splits a statement into tokens. Comments are dropped, except that the
// content of MySQL executable comments (/*!50100 ... */, /*M!100100 ... */) is kept,
// since servers write real clauses there.
func tokenize(s string) ([]token, error) {
	var out []token
	inExec := false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '#' || (c == '-' && strings.HasPrefix(s[i:], "-- ")) || (c == '-' && i+2 == len(s) && s[i+1] == '-'):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			rest := s[i+2:]
			if strings.HasPrefix(rest, "!") || strings.HasPrefix(rest, "M!") {
				i += 3
				if rest[0] == 'M' {
					i++
				}
				for i < len(s) && s[i] >= '0' && s[i] <= '9' {
					i++
				}
				inExec = true
				continue
			}
			end := strings.Index(rest, "*/")
			if end < 0 {
				return nil, errors.New("unterminated comment")
			}
			i += 2 + end + 2
		case c == '*' && inExec && i+1 < len(s) && s[i+1] == '/':
			inExec = false
			i += 2
		case c == '`':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, errors.New("unterminated quoted identifier")
				}
				if s[j] == '`' {
					if j+1 < len(s) && s[j+1] == '`' {
						b.WriteByte('`')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			out = append(out, token{tokIdent, b.String()})
			i = j + 1
		case c == '\'' || c == '"':
			str, n, err := scanString(s[i:])
			if err != nil {
				return nil, err
			}
			out = append(out, token{tokString, str})
			i += n
		case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1]) && !prevIsName(out)):
			j := i
			for j < len(s) && (isWordByte(s[j]) || s[j] == '.' ||
				((s[j] == '+' || s[j] == '-') && j > i && (s[j-1] == 'e' || s[j-1] == 'E'))) {
				j++
			}
			out = append(out, token{tokNumber, s[i:j]})
			i = j
		case isWordByte(c) || c >= 0x80:
			j := i
			for j < len(s) && (isWordByte(s[j]) || s[j] >= 0x80) {
				j++
			}
			word := s[i:j]
			// A charset introducer (_utf8mb4'x') belongs to the literal after it.
			if word[0] == '_' && j < len(s) && (s[j] == '\'' || s[j] == '"') {
				i = j
				continue
			}
			out = append(out, token{tokWord, word})
			i = j
		default:
			out = append(out, token{tokPunct, string(c)})
			i++
		}
	}
	return out, nil
}

func prevIsName(toks []token) bool {
	if len(toks) == 0 {
		return false
	}
	t := toks[len(toks)-1]
	return t.kind == tokWord || t.kind == tokIdent
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '_' || c == '$'
}

// scanString reads a quoted literal at the start of s: backslash escapes and doubled
// quotes, as the server writes them in SHOW CREATE TABLE.
func scanString(s string) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for j := 1; j < len(s); j++ {
		c := s[j]
		switch {
		case c == '\\' && j+1 < len(s):
			j++
			switch s[j] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			case 'b':
				b.WriteByte('\b')
			case 'Z':
				b.WriteByte(26)
			default:
				b.WriteByte(s[j])
			}
		case c == q:
			if j+1 < len(s) && s[j+1] == q {
				b.WriteByte(q)
				j++
				continue
			}
			return b.String(), j + 1, nil
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, errors.New("unterminated string literal")
}

// tableName is a possibly database-qualified table name.
type tableName struct{ db, name string }

func (t tableName) String() string { return t.db + "." + t.name }

// typeSpec is a column's declared type.
type typeSpec struct {
	Base     string   `json:"base"`           // lower-case type name: int, varchar, enum, ...
	Args     []string `json:"args,omitempty"` // (10,2) -> ["10","2"]; enum/set values unquoted
	Unsigned bool     `json:"unsigned,omitempty"`
	Charset  string   `json:"charset,omitempty"` // explicit CHARACTER SET (or implied by COLLATE)
}

// colDef is a column definition.
type colDef struct {
	Name      string   `json:"name"`
	Type      typeSpec `json:"type"`
	NotNull   bool     `json:"not_null,omitempty"`
	Primary   bool     `json:"primary,omitempty"`    // inline PRIMARY KEY
	JSONCheck bool     `json:"json_check,omitempty"` // CHECK (json_valid(col)): MariaDB's JSON
}

// tableDef is what the parser knows of a table.
type tableDef struct {
	Columns []colDef `json:"columns"`
	Key     []string `json:"key,omitempty"`     // primary key column names
	Charset string   `json:"charset,omitempty"` // table default character set
}

func (d *tableDef) index(name string) int {
	for i, c := range d.Columns {
		if strings.EqualFold(c.Name, name) {
			return i
		}
	}
	return -1
}

func (d *tableDef) clone() *tableDef {
	c := &tableDef{Columns: append([]colDef(nil), d.Columns...), Key: append([]string(nil), d.Key...), Charset: d.Charset}
	return c
}

// stmtKind classifies a DDL statement.
type stmtKind uint8

const (
	stmtOther         stmtKind = iota // does not touch table columns
	stmtCreate                        // CREATE TABLE with columns
	stmtLike                          // CREATE TABLE ... LIKE
	stmtAlter                         // ALTER TABLE
	stmtDrop                          // DROP TABLE
	stmtRename                        // RENAME TABLE
	stmtTruncate                      // TRUNCATE TABLE
	stmtDropDB                        // DROP DATABASE
	stmtSequence                      // CREATE SEQUENCE (MariaDB), or CREATE TABLE ... SEQUENCE=1
	stmtDropSeq                       // DROP SEQUENCE
	stmtDBCharset                     // CREATE or ALTER DATABASE: the default character set of db
	stmtServerCharset                 // SET GLOBAL character_set_server (written into the history only)
)

// alterOp is one clause of ALTER TABLE that matters to the schema.
type alterOp struct {
	op       string // add, drop, modify, change, rename_column, rename_table, add_pk, drop_pk, convert, charset
	col      colDef
	old, new string
	first    bool
	after    string
	to       tableName
	charset  string
	cols     []string // add_pk
	ifExists bool
}

// ddl is a parsed statement.
type ddl struct {
	kind    stmtKind
	table   tableName   // create, like, alter, truncate
	like    tableName   // stmtLike
	def     *tableDef   // stmtCreate
	tables  []tableName // stmtDrop
	renames [][2]tableName
	ops     []alterOp
	db      string // stmtDropDB, stmtDBCharset
	charset string // stmtDBCharset, stmtServerCharset ("" when the statement names none)
	ifNot   bool   // CREATE TABLE IF NOT EXISTS
	replace bool   // CREATE OR REPLACE TABLE
}

// errUnsupported marks a statement that changes a table in a way the parser cannot
// follow; the connector must stop rather than mislabel columns.
var errUnsupported = errors.New("unsupported DDL")

// errNoRowEvents marks a statement that changes a table's rows without row events
// (dropping or exchanging a partition): no definition, however exact, makes up
// for the rows it changes, so the connector stops.
var errNoRowEvents = fmt.Errorf("%w: rows change without row events", errUnsupported)

type parser struct {
	toks   []token
	i      int
	db     string    // the default database the statement ran in
	target tableName // the table a CREATE or ALTER names, once read
}

func (p *parser) peek() token {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return token{kind: tokPunct, text: ""}
}

func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return token{kind: tokPunct, text: ""}
}

func (p *parser) eof() bool { return p.i >= len(p.toks) || p.peek().punct(";") }

func (p *parser) next() token { t := p.peek(); p.i++; return t }

func (p *parser) accept(words ...string) bool {
	for k, w := range words {
		if !p.peekAt(k).is(w) {
			return false
		}
	}
	p.i += len(words)
	return true
}

func (p *parser) acceptPunct(s string) bool {
	if p.peek().punct(s) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expect(w string) error {
	if !p.accept(w) {
		return p.errf("expected %s", w)
	}
	return nil
}

func (p *parser) expectPunct(s string) error {
	if !p.acceptPunct(s) {
		return p.errf("expected %q", s)
	}
	return nil
}

func (p *parser) errf(format string, args ...any) error {
	at := "end of statement"
	if p.i < len(p.toks) {
		at = fmt.Sprintf("%q", p.toks[p.i].text)
	}
	return fmt.Errorf("%w: "+format+" at %s", append([]any{errUnsupported}, append(args, at)...)...)
}

func (p *parser) noRowEvents(what string) error {
	return fmt.Errorf("%w: %s at %q", errNoRowEvents, what, p.peek().text)
}

// ident reads an identifier (quoted or not).
func (p *parser) ident() (string, error) {
	t := p.peek()
	if t.kind == tokIdent || t.kind == tokWord {
		p.i++
		return t.text, nil
	}
	return "", p.errf("expected an identifier")
}

func (p *parser) tableName() (tableName, error) {
	a, err := p.ident()
	if err != nil {
		return tableName{}, err
	}
	if p.acceptPunct(".") {
		b, err := p.ident()
		if err != nil {
			return tableName{}, err
		}
		return tableName{db: a, name: b}, nil
	}
	return tableName{db: p.db, name: a}, nil
}

// skipGroup skips a balanced parenthesised group starting at '('.
func (p *parser) skipGroup() error {
	if err := p.expectPunct("("); err != nil {
		return err
	}
	for depth := 1; depth > 0; {
		if p.i >= len(p.toks) {
			return p.errf("unbalanced parentheses")
		}
		t := p.next()
		if t.punct("(") {
			depth++
		} else if t.punct(")") {
			depth--
		}
	}
	return nil
}

// skipItem skips to the next ',' or ')' at the current depth, leaving it unread.
func (p *parser) skipItem() error {
	for !p.eof() {
		t := p.peek()
		if t.punct(",") || t.punct(")") {
			return nil
		}
		if t.punct("(") {
			if err := p.skipGroup(); err != nil {
				return err
			}
			continue
		}
		p.i++
	}
	return nil
}

// parseDDL parses one statement that ran with db as its default database. On error
// the returned ddl, when not nil, names the table the statement is about.
func parseDDL(sql, db string) (*ddl, error) {
	toks, err := tokenize(sql)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnsupported, err)
	}
	p := &parser{toks: toks, db: db}
	d, err := p.statement()
	if err != nil {
		if p.target.name != "" {
			return &ddl{table: p.target}, err
		}
		return nil, err
	}
	return d, nil
}

func (p *parser) statement() (*ddl, error) {
	switch {
	case p.accept("CREATE"):
		d := &ddl{}
		if p.accept("OR", "REPLACE") {
			d.replace = true
		}
		if p.accept("TEMPORARY") {
			// Temporary tables never reach a row-based binlog's rows events.
			return &ddl{kind: stmtOther}, nil
		}
		switch {
		case p.accept("SEQUENCE"):
			return p.sequence(d)
		case p.accept("DATABASE"), p.accept("SCHEMA"):
			return p.database(true)
		case !p.accept("TABLE"):
			return &ddl{kind: stmtOther}, nil
		}
		return p.create(d)
	case p.accept("ALTER"):
		for p.accept("ONLINE") || p.accept("OFFLINE") || p.accept("IGNORE") {
		}
		if p.accept("DATABASE") || p.accept("SCHEMA") {
			return p.database(false)
		}
		if !p.accept("TABLE") {
			return &ddl{kind: stmtOther}, nil
		}
		return p.alter()
	case p.accept("DROP"):
		if p.accept("DATABASE") || p.accept("SCHEMA") {
			p.accept("IF", "EXISTS")
			name, err := p.ident()
			if err != nil {
				return nil, err
			}
			return &ddl{kind: stmtDropDB, db: name}, nil
		}
		if p.accept("TEMPORARY") {
			return &ddl{kind: stmtOther}, nil
		}
		d := &ddl{kind: stmtDrop}
		if p.accept("SEQUENCE") {
			d.kind = stmtDropSeq
		} else if !p.accept("TABLE") && !p.accept("TABLES") {
			return &ddl{kind: stmtOther}, nil
		}
		p.accept("IF", "EXISTS")
		for {
			t, err := p.tableName()
			if err != nil {
				return nil, err
			}
			d.tables = append(d.tables, t)
			if !p.acceptPunct(",") {
				break
			}
		}
		return d, nil
	case p.accept("RENAME"):
		if !p.accept("TABLE") && !p.accept("TABLES") {
			return &ddl{kind: stmtOther}, nil
		}
		d := &ddl{kind: stmtRename}
		for {
			from, err := p.tableName()
			if err != nil {
				return nil, err
			}
			if p.accept("WAIT") || p.accept("NOWAIT") {
				if p.peek().kind == tokNumber {
					p.i++
				}
			}
			if err := p.expect("TO"); err != nil {
				return nil, err
			}
			to, err := p.tableName()
			if err != nil {
				return nil, err
			}
			d.renames = append(d.renames, [2]tableName{from, to})
			if !p.acceptPunct(",") {
				break
			}
		}
		return d, nil
	case p.accept("SET", "GLOBAL", "character_set_server"):
		p.acceptPunct("=")
		cs, err := p.ident()
		if err != nil {
			return nil, err
		}
		return &ddl{kind: stmtServerCharset, charset: strings.ToLower(cs)}, nil
	case p.accept("TRUNCATE"):
		p.accept("TABLE")
		t, err := p.tableName()
		if err != nil {
			return nil, err
		}
		return &ddl{kind: stmtTruncate, table: t}, nil
	}
	return &ddl{kind: stmtOther}, nil
}

// sequence reads the name of CREATE [OR REPLACE] SEQUENCE [IF NOT EXISTS] name ...:
// a sequence is a table whose rows events carry its state, not data for the lake.
func (p *parser) sequence(d *ddl) (*ddl, error) {
	d.ifNot = p.accept("IF", "NOT", "EXISTS")
	t, err := p.tableName()
	if err != nil {
		return nil, err
	}
	d.kind, d.table = stmtSequence, t
	return d, nil
}

// database reads CREATE DATABASE [IF NOT EXISTS] name options, or ALTER DATABASE
// [name] options, keeping the default character set the options name.
func (p *parser) database(create bool) (*ddl, error) {
	d := &ddl{kind: stmtDBCharset, db: p.db}
	if create {
		d.ifNot = p.accept("IF", "NOT", "EXISTS")
	}
	if t := p.peek(); t.kind == tokIdent || t.kind == tokWord && !t.is("DEFAULT") && !t.is("CHARACTER") &&
		!t.is("CHARSET") && !t.is("COLLATE") && !t.is("UPGRADE") {
		p.i++
		d.db = t.text
	}
	for !p.eof() {
		cs, ok, err := p.charsetOption()
		if err != nil {
			return nil, err
		}
		if !ok {
			p.i++
			continue
		}
		if cs != "" {
			d.charset = cs
		}
	}
	return d, nil
}

func (p *parser) create(d *ddl) (*ddl, error) {
	if p.accept("IF", "NOT", "EXISTS") {
		d.ifNot = true
	}
	t, err := p.tableName()
	if err != nil {
		return nil, err
	}
	d.table, p.target = t, t
	if p.accept("LIKE") || (p.peek().punct("(") && p.peekAt(1).is("LIKE")) {
		paren := p.acceptPunct("(")
		p.accept("LIKE")
		if d.like, err = p.tableName(); err != nil {
			return nil, err
		}
		if paren {
			if err := p.expectPunct(")"); err != nil {
				return nil, err
			}
		}
		d.kind = stmtLike
		return d, nil
	}
	if !p.peek().punct("(") {
		return nil, p.errf("CREATE TABLE without a column list")
	}
	def := &tableDef{}
	p.i++
	for {
		if err := p.createItem(def); err != nil {
			return nil, err
		}
		if p.acceptPunct(",") {
			continue
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		break
	}
	seq, err := p.tableOptions(def)
	if err != nil {
		return nil, err
	}
	if seq {
		d.kind = stmtSequence
		return d, nil
	}
	for _, c := range def.Columns {
		if c.Primary && len(def.Key) == 0 {
			def.Key = []string{c.Name}
		}
	}
	d.kind, d.def = stmtCreate, def
	return d, nil
}

// tableOptions reads the options after a CREATE TABLE column list, keeping the
// default character set; seq reports SEQUENCE=1 (MariaDB's other way to create a
// sequence, and how SHOW CREATE TABLE shows one). A trailing SELECT would add
// columns it does not declare.
func (p *parser) tableOptions(def *tableDef) (seq bool, err error) {
	for !p.eof() {
		switch {
		case p.peek().is("SELECT") || p.peek().is("AS") || p.peek().punct("("):
			return false, p.errf("CREATE TABLE ... SELECT")
		case p.peek().is("WITH") && p.peekAt(1).is("SYSTEM"):
			return false, p.errf("WITH SYSTEM VERSIONING adds hidden columns to the row images")
		case p.peek().is("PARTITION"):
			// Partitioning does not change columns; it runs to the end.
			p.i = len(p.toks)
			return seq, nil
		case p.accept("SEQUENCE"):
			p.acceptPunct("=")
			seq = p.next().text == "1"
			continue
		}
		if cs, ok, err := p.charsetOption(); err != nil {
			return false, err
		} else if ok {
			if cs != "" {
				def.Charset = cs
			}
			continue
		}
		p.i++
	}
	return seq, nil
}

// charsetOption reads [DEFAULT] {CHARACTER SET|CHARSET|COLLATE} [=] name. For a
// COLLATE it returns the collation's character set.
func (p *parser) charsetOption() (string, bool, error) {
	save := p.i
	p.accept("DEFAULT")
	collate := false
	switch {
	case p.accept("CHARACTER", "SET"), p.accept("CHARSET"):
	case p.accept("COLLATE"):
		collate = true
	default:
		p.i = save
		return "", false, nil
	}
	p.acceptPunct("=")
	name, err := p.ident()
	if err != nil {
		return "", false, err
	}
	name = strings.ToLower(name)
	if collate {
		return collationCharset(name), true, nil
	}
	return name, true, nil
}

// collationCharset is the character set a collation belongs to (its name up to the
// first '_'), or "" for DEFAULT.
func collationCharset(coll string) string {
	if coll == "default" {
		return ""
	}
	if cs, _, ok := strings.Cut(coll, "_"); ok {
		return cs
	}
	return coll
}

// createItem reads one element of a CREATE TABLE list: a column or a constraint.
func (p *parser) createItem(def *tableDef) error {
	t := p.peek()
	if t.kind == tokWord {
		switch strings.ToUpper(t.text) {
		case "PRIMARY":
			p.i++
			if err := p.expect("KEY"); err != nil {
				return err
			}
			cols, err := p.keyParts()
			if err != nil {
				return err
			}
			def.Key = cols
			return p.skipItem()
		case "CONSTRAINT":
			p.i++
			if !p.peek().is("PRIMARY") && !p.peek().is("UNIQUE") && !p.peek().is("FOREIGN") && !p.peek().is("CHECK") {
				if _, err := p.ident(); err != nil {
					return err
				}
			}
			if p.accept("PRIMARY", "KEY") {
				cols, err := p.keyParts()
				if err != nil {
					return err
				}
				def.Key = cols
			}
			return p.skipItem()
		case "KEY", "INDEX", "UNIQUE", "FULLTEXT", "SPATIAL", "FOREIGN", "CHECK", "PERIOD":
			return p.skipItem()
		}
	}
	c, err := p.columnDef()
	if err != nil {
		return err
	}
	def.Columns = append(def.Columns, c)
	return nil
}

// keyParts reads (a, b(10), c DESC) and returns the column names.
func (p *parser) keyParts() ([]string, error) {
	// USING BTREE may stand before the list.
	for p.peek().kind == tokWord && !p.peek().punct("(") {
		p.i++
	}
	if err := p.expectPunct("("); err != nil {
		return nil, err
	}
	var cols []string
	for {
		name, err := p.ident()
		if err != nil {
			return nil, err
		}
		cols = append(cols, name)
		if err := p.skipItem(); err != nil {
			return nil, err
		}
		if p.acceptPunct(",") {
			continue
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		return cols, nil
	}
}

// columnDef reads `name type attributes...` up to the next ',' or ')'.
func (p *parser) columnDef() (colDef, error) {
	name, err := p.ident()
	if err != nil {
		return colDef{}, err
	}
	c := colDef{Name: name}
	if c.Type, err = p.typeSpec(); err != nil {
		return colDef{}, err
	}
	for !p.eof() {
		t := p.peek()
		if t.punct(",") || t.punct(")") {
			break
		}
		if t.is("FIRST") || t.is("AFTER") {
			break // a column position in ALTER TABLE, read by the caller
		}
		switch {
		case p.accept("NOT", "NULL"):
			c.NotNull = true
		case p.accept("NULL"):
		case p.accept("UNSIGNED"):
			c.Type.Unsigned = true
		case p.accept("SIGNED"), p.accept("ZEROFILL"):
		case p.accept("PRIMARY", "KEY"):
			c.Primary = true
			c.NotNull = true
		case p.accept("CHARACTER", "SET"), p.accept("CHARSET"):
			cs, err := p.ident()
			if err != nil {
				return colDef{}, err
			}
			c.Type.Charset = strings.ToLower(cs)
		case p.accept("COLLATE"):
			coll, err := p.ident()
			if err != nil {
				return colDef{}, err
			}
			if c.Type.Charset == "" {
				c.Type.Charset = collationCharset(strings.ToLower(coll))
			}
		case p.accept("BINARY"):
			// BINARY after a character type picks the binary collation of its set.
		case p.accept("DEFAULT"), p.accept("COMMENT"), p.accept("ON", "UPDATE"):
			if err := p.skipExpr(); err != nil {
				return colDef{}, err
			}
		case p.accept("CHECK"):
			if p.isJSONValid(name) {
				c.JSONCheck = true
			}
			if err := p.skipGroup(); err != nil {
				return colDef{}, err
			}
		case t.punct("("):
			if err := p.skipGroup(); err != nil {
				return colDef{}, err
			}
		default:
			p.i++
		}
	}
	return c, nil
}

// skipExpr skips one default/comment value: a literal, a word with an optional
// argument list, or a parenthesised expression.
func (p *parser) skipExpr() error {
	t := p.peek()
	if t.punct("(") {
		return p.skipGroup()
	}
	if t.punct("-") || t.punct("+") {
		p.i++
	}
	p.i++
	if p.peek().punct("(") {
		return p.skipGroup()
	}
	return nil
}

// isJSONValid reports whether the group at the cursor is (json_valid(`name`)).
func (p *parser) isJSONValid(name string) bool {
	return p.peekAt(0).punct("(") && p.peekAt(1).is("json_valid") && p.peekAt(2).punct("(") &&
		(p.peekAt(3).kind == tokIdent || p.peekAt(3).kind == tokWord) && strings.EqualFold(p.peekAt(3).text, name) &&
		p.peekAt(4).punct(")") && p.peekAt(5).punct(")")
}

// typeSpec reads a data type with its arguments.
func (p *parser) typeSpec() (typeSpec, error) {
	t := p.peek()
	if t.kind != tokWord {
		return typeSpec{}, p.errf("expected a data type")
	}
	p.i++
	base := strings.ToLower(t.text)
	switch base {
	case "national":
		return p.typeSpec()
	case "double":
		p.accept("PRECISION")
	case "character", "char":
		base = "char"
		if p.accept("VARYING") {
			base = "varchar"
		}
	case "nchar":
		base = "char"
		if p.accept("VARYING") {
			base = "varchar"
		}
	case "nvarchar":
		base = "varchar"
	case "long":
		switch {
		case p.accept("VARBINARY"):
			base = "mediumblob"
		case p.accept("VARCHAR"):
			base = "mediumtext"
		default:
			base = "mediumtext"
		}
	case "integer":
		base = "int"
	case "dec", "numeric", "fixed":
		base = "decimal"
	case "real":
		base = "double"
	case "boolean":
		base = "bool"
	case "int1":
		base = "tinyint"
	case "int2":
		base = "smallint"
	case "int3", "middleint":
		base = "mediumint"
	case "int4":
		base = "int"
	case "int8":
		base = "bigint"
	case "float4":
		base = "float"
	case "float8":
		base = "double"
	}
	ts := typeSpec{Base: base}
	if p.acceptPunct("(") {
		for {
			a := p.next()
			switch a.kind {
			case tokNumber, tokString, tokWord:
				ts.Args = append(ts.Args, a.text)
			default:
				return typeSpec{}, p.errf("bad type argument")
			}
			if p.acceptPunct(",") {
				continue
			}
			if err := p.expectPunct(")"); err != nil {
				return typeSpec{}, err
			}
			break
		}
	}
	// "char(10) BYTE", "varchar(5) CHARACTER SET ...": handled by columnDef.
	return ts, nil
}

// alter reads ALTER TABLE name spec, spec, ...
func (p *parser) alter() (*ddl, error) {
	t, err := p.tableName()
	if err != nil {
		return nil, err
	}
	p.target = t
	d := &ddl{kind: stmtAlter, table: t}
	for !p.eof() {
		op, ok, err := p.alterSpec()
		if err != nil {
			return nil, err
		}
		if ok {
			d.ops = append(d.ops, op...)
		}
		if !p.acceptPunct(",") {
			if !p.eof() {
				// A partition clause follows the specs without a comma.
				if p.peek().is("PARTITION") || p.peek().is("REMOVE") {
					break
				}
				return nil, p.errf("unexpected token after ALTER TABLE clause")
			}
		}
	}
	return d, nil
}

func (p *parser) position(op *alterOp) error {
	switch {
	case p.accept("FIRST"):
		op.first = true
	case p.accept("AFTER"):
		name, err := p.ident()
		if err != nil {
			return err
		}
		op.after = name
	}
	return nil
}

// alterSpec reads one ALTER TABLE clause. ok is false for clauses that do not touch
// the columns or the key.
func (p *parser) alterSpec() ([]alterOp, bool, error) {
	switch {
	case p.accept("ADD"):
		switch {
		case p.accept("PRIMARY", "KEY"):
			cols, err := p.keyParts()
			if err != nil {
				return nil, false, err
			}
			return []alterOp{{op: "add_pk", cols: cols}}, true, p.skipItem()
		case p.accept("CONSTRAINT"):
			p.accept("IF", "NOT", "EXISTS")
			if !p.peek().is("PRIMARY") && !p.peek().is("UNIQUE") && !p.peek().is("FOREIGN") && !p.peek().is("CHECK") {
				if _, err := p.ident(); err != nil {
					return nil, false, err
				}
			}
			if p.accept("PRIMARY", "KEY") {
				cols, err := p.keyParts()
				if err != nil {
					return nil, false, err
				}
				return []alterOp{{op: "add_pk", cols: cols}}, true, p.skipItem()
			}
			return nil, false, p.skipItem()
		case p.peek().is("SYSTEM"):
			return nil, false, p.errf("SYSTEM VERSIONING adds hidden row_start/row_end columns to the row images")
		case p.peek().is("INDEX") || p.peek().is("KEY") || p.peek().is("UNIQUE") || p.peek().is("FULLTEXT") ||
			p.peek().is("SPATIAL") || p.peek().is("FOREIGN") || p.peek().is("CHECK") || p.peek().is("PERIOD") ||
			p.peek().is("PARTITION"):
			return nil, false, p.skipItem()
		}
		p.accept("COLUMN")
		ifNot := p.accept("IF", "NOT", "EXISTS")
		if p.acceptPunct("(") {
			var ops []alterOp
			for {
				t := p.peek()
				if t.is("PRIMARY") || t.is("KEY") || t.is("INDEX") || t.is("UNIQUE") || t.is("CONSTRAINT") || t.is("FOREIGN") || t.is("CHECK") {
					return nil, false, p.errf("key definitions inside ADD (...)")
				}
				c, err := p.columnDef()
				if err != nil {
					return nil, false, err
				}
				ops = append(ops, alterOp{op: "add", col: c, ifExists: ifNot})
				if p.acceptPunct(",") {
					continue
				}
				if err := p.expectPunct(")"); err != nil {
					return nil, false, err
				}
				return ops, true, nil
			}
		}
		c, err := p.columnDef()
		if err != nil {
			return nil, false, err
		}
		op := alterOp{op: "add", col: c, ifExists: ifNot}
		err = p.position(&op)
		return []alterOp{op}, true, err
	case p.accept("DROP"):
		switch {
		case p.accept("PRIMARY", "KEY"):
			return []alterOp{{op: "drop_pk"}}, true, nil
		case p.peek().is("PARTITION"):
			return nil, false, p.noRowEvents("DROP PARTITION deletes rows")
		case p.peek().is("SYSTEM"):
			return nil, false, p.errf("SYSTEM VERSIONING changes the columns of the row images")
		case p.peek().is("INDEX") || p.peek().is("KEY") || p.peek().is("FOREIGN") || p.peek().is("CHECK") ||
			p.peek().is("CONSTRAINT") || p.peek().is("PERIOD"):
			return nil, false, p.skipItem()
		}
		p.accept("COLUMN")
		op := alterOp{op: "drop"}
		if p.accept("IF", "EXISTS") {
			op.ifExists = true
		}
		name, err := p.ident()
		if err != nil {
			return nil, false, err
		}
		op.old = name
		p.accept("RESTRICT")
		p.accept("CASCADE")
		return []alterOp{op}, true, nil
	case p.accept("MODIFY"):
		p.accept("COLUMN")
		op := alterOp{op: "modify"}
		if p.accept("IF", "EXISTS") {
			op.ifExists = true
		}
		c, err := p.columnDef()
		if err != nil {
			return nil, false, err
		}
		op.col, op.old = c, c.Name
		if err := p.position(&op); err != nil {
			return nil, false, err
		}
		return []alterOp{op}, true, nil
	case p.accept("CHANGE"):
		p.accept("COLUMN")
		op := alterOp{op: "change"}
		if p.accept("IF", "EXISTS") {
			op.ifExists = true
		}
		old, err := p.ident()
		if err != nil {
			return nil, false, err
		}
		c, err := p.columnDef()
		if err != nil {
			return nil, false, err
		}
		op.col, op.old = c, old
		if err := p.position(&op); err != nil {
			return nil, false, err
		}
		return []alterOp{op}, true, nil
	case p.accept("RENAME"):
		switch {
		case p.accept("COLUMN"):
			op := alterOp{op: "rename_column"}
			if p.accept("IF", "EXISTS") {
				op.ifExists = true
			}
			old, err := p.ident()
			if err != nil {
				return nil, false, err
			}
			if err := p.expect("TO"); err != nil {
				return nil, false, err
			}
			nw, err := p.ident()
			if err != nil {
				return nil, false, err
			}
			op.old, op.new = old, nw
			return []alterOp{op}, true, nil
		case p.peek().is("INDEX") || p.peek().is("KEY"):
			return nil, false, p.skipItem()
		}
		if !p.accept("TO") {
			p.accept("AS")
		}
		to, err := p.tableName()
		if err != nil {
			return nil, false, err
		}
		return []alterOp{{op: "rename_table", to: to}}, true, nil
	case p.accept("CONVERT", "TO"):
		if !p.accept("CHARACTER", "SET") && !p.accept("CHARSET") {
			return nil, false, p.errf("expected CHARACTER SET")
		}
		cs, err := p.ident()
		if err != nil {
			return nil, false, err
		}
		op := alterOp{op: "convert", charset: strings.ToLower(cs)}
		if strings.EqualFold(cs, "default") {
			return nil, false, p.errf("CONVERT TO CHARACTER SET DEFAULT")
		}
		return []alterOp{op}, true, p.skipItem()
	case p.peek().is("TRUNCATE") || p.peek().is("EXCHANGE") || p.peek().is("DISCARD") || p.peek().is("IMPORT"):
		return nil, false, p.noRowEvents("a partition or tablespace operation changes rows")
	}
	if cs, ok, err := p.charsetOption(); err != nil {
		return nil, false, err
	} else if ok {
		if cs == "" {
			return nil, false, nil
		}
		return []alterOp{{op: "charset", charset: cs}}, true, p.skipItem()
	}
	switch t := p.peek(); {
	case t.is("ALTER"), t.is("ALGORITHM"), t.is("LOCK"), t.is("FORCE"), t.is("ENGINE"), t.is("AUTO_INCREMENT"),
		t.is("COMMENT"), t.is("ROW_FORMAT"), t.is("KEY_BLOCK_SIZE"), t.is("ORDER"), t.is("ENABLE"), t.is("DISABLE"),
		t.is("STATS_PERSISTENT"), t.is("STATS_AUTO_RECALC"), t.is("STATS_SAMPLE_PAGES"), t.is("PAGE_COMPRESSED"),
		t.is("PAGE_COMPRESSION_LEVEL"), t.is("ENCRYPTED"), t.is("ENCRYPTION_KEY_ID"), t.is("CHECKSUM"),
		t.is("DELAY_KEY_WRITE"), t.is("PACK_KEYS"), t.is("MAX_ROWS"), t.is("MIN_ROWS"), t.is("AVG_ROW_LENGTH"),
		t.is("TRANSACTIONAL"), t.is("COMPRESSION"), t.is("INSERT_METHOD"), t.is("TABLESPACE"), t.is("STORAGE"),
		t.is("UNION"), t.is("DATA"), t.is("INDEX"), t.is("SECONDARY_ENGINE"), t.is("ANALYZE"), t.is("CHECK"),
		t.is("OPTIMIZE"), t.is("REBUILD"), t.is("REPAIR"), t.is("COALESCE"), t.is("REORGANIZE"), t.is("PARTITION"),
		t.is("REMOVE"), t.is("WITH"), t.is("WITHOUT"), t.is("VALIDATION"), t.is("NOWAIT"), t.is("WAIT"),
		t.is("AUTOEXTEND_SIZE"), t.is("SEQUENCE"):
		// These change storage, indexes, defaults (ALTER [COLUMN] c SET DEFAULT ...) or
		// visibility, never the columns or their order.
		if t.is("PARTITION") || t.is("REMOVE") {
			p.i = len(p.toks)
			return nil, false, nil
		}
		return nil, false, p.skipItem()
	}
	return nil, false, p.errf("unknown ALTER TABLE clause")
}

// apply changes def by the ALTER TABLE clauses.
func applyAlter(def *tableDef, ops []alterOp) (*tableDef, error) {
	d := def.clone()
	for _, op := range ops {
		switch op.op {
		case "add":
			if d.index(op.col.Name) >= 0 {
				if op.ifExists {
					continue
				}
				return nil, fmt.Errorf("column %s already exists", op.col.Name)
			}
			at, err := d.insertAt(op)
			if err != nil {
				return nil, err
			}
			d.Columns = append(d.Columns[:at], append([]colDef{op.col}, d.Columns[at:]...)...)
			if op.col.Primary {
				d.Key = []string{op.col.Name}
			}
		case "drop":
			i := d.index(op.old)
			if i < 0 {
				if op.ifExists {
					continue
				}
				return nil, fmt.Errorf("no column %s to drop", op.old)
			}
			d.Columns = append(d.Columns[:i], d.Columns[i+1:]...)
			d.Key = removeName(d.Key, op.old)
		case "modify", "change":
			i := d.index(op.old)
			if i < 0 {
				if op.ifExists {
					continue
				}
				return nil, fmt.Errorf("no column %s to %s", op.old, op.op)
			}
			oldName := d.Columns[i].Name
			d.Columns = append(d.Columns[:i], d.Columns[i+1:]...)
			at := i
			if op.first || op.after != "" {
				var err error
				if at, err = d.insertAt(op); err != nil {
					return nil, err
				}
			}
			d.Columns = append(d.Columns[:at], append([]colDef{op.col}, d.Columns[at:]...)...)
			d.Key = renameName(d.Key, oldName, op.col.Name)
			if op.col.Primary {
				d.Key = []string{op.col.Name}
			}
		case "rename_column":
			i := d.index(op.old)
			if i < 0 {
				if op.ifExists {
					continue
				}
				return nil, fmt.Errorf("no column %s to rename", op.old)
			}
			d.Columns[i].Name = op.new
			d.Key = renameName(d.Key, op.old, op.new)
		case "add_pk":
			d.Key = op.cols
		case "drop_pk":
			d.Key = nil
		case "convert":
			d.Charset = op.charset
			for i := range d.Columns {
				if isCharType(d.Columns[i].Type.Base) && d.Columns[i].Type.Charset != "binary" {
					d.Columns[i].Type.Charset = op.charset
				}
			}
		case "charset":
			d.Charset = op.charset
		}
	}
	return d, nil
}

func (d *tableDef) insertAt(op alterOp) (int, error) {
	switch {
	case op.first:
		return 0, nil
	case op.after != "":
		i := d.index(op.after)
		if i < 0 {
			return 0, fmt.Errorf("no column %s to place a column after", op.after)
		}
		return i + 1, nil
	}
	return len(d.Columns), nil
}

func removeName(names []string, n string) []string {
	var out []string
	for _, x := range names {
		if !strings.EqualFold(x, n) {
			out = append(out, x)
		}
	}
	return out
}

func renameName(names []string, old, nw string) []string {
	out := append([]string(nil), names...)
	for i, x := range out {
		if strings.EqualFold(x, old) {
			out[i] = nw
		}
	}
	return out
}

// isCharType reports whether a base type holds text in a character set.
func isCharType(base string) bool {
	switch base {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set":
		return true
	}
	return false
}
