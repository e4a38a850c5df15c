/** The part of @lhncbc/ucum-lhc (the NLM's UCUM library, which ships no types) this service uses. */
declare module '@lhncbc/ucum-lhc' {
  interface ConversionResult {
    status: 'succeeded' | 'failed' | 'error';
    toVal: number | null;
    msg: string[];
  }
  interface UcumLhcUtils {
    convertUnitTo(
      fromUnitCode: string,
      fromVal: number,
      toUnitCode: string,
      options?: { molecularWeight?: number; charge?: number },
    ): ConversionResult;
  }
  // getInstance() makes a new object each call (ucumLhcUtils.js), sharing the unit tables and the parser.
  const ucum: { UcumLhcUtils: { getInstance(): UcumLhcUtils; prototype: UcumLhcUtils } };
  export default ucum;
}
