// SPDX-License-Identifier: Apache-2.0
// trousers' TSP library (libtspi.so.1), loaded at run time so that aem-pcr starts and predicts
// on a host without trousers. One type opens it and resolves every symbol it uses at once
// (as systemd's dlopen_tpm2() does); a missing library or symbol is one error naming the package.
import AEMPCR
internal import CTspi
import Glibc

/// TSS 1.2 types and constants used here, with the names and values of trousers' headers
/// (`<tss/tss_defines.h>`, `<tss/tpm.h>`, `<tss/tss_error.h>` from libtspi-dev 0.3.15), declared
/// here so that the build needs no libtspi-dev. Handles are `UINT32`.
enum TSS {
    typealias Handle = UInt32
    typealias Result = UInt32

    /// `TSS_OBJECT_TYPE_POLICY`
    static let objectTypePolicy: UInt32 = 0x01
    /// `TSS_OBJECT_TYPE_RSAKEY`
    static let objectTypeRSAKey: UInt32 = 0x02
    /// `TSS_OBJECT_TYPE_ENCDATA`
    static let objectTypeEncData: UInt32 = 0x03
    /// `TSS_OBJECT_TYPE_PCRS`
    static let objectTypePCRs: UInt32 = 0x04

    /// `TSS_KEY_AUTHORIZATION`
    static let keyAuthorization: UInt32 = 0x0000_0001
    /// `TSS_KEY_VOLATILE`
    static let keyVolatile: UInt32 = 0x0000_0004
    /// `TSS_KEY_NOT_MIGRATABLE`
    static let keyNotMigratable: UInt32 = 0x0000_0000
    /// `TSS_KEY_TYPE_STORAGE`
    static let keyTypeStorage: UInt32 = 0x0000_0020
    /// `TSS_KEY_SIZE_2048`
    static let keySize2048: UInt32 = 0x0000_0300

    /// `TSS_ENCDATA_SEAL`
    static let encDataSeal: UInt32 = 0x0000_0001
    /// `TSS_PCRS_STRUCT_INFO_LONG` (TPM_PCR_INFO_LONG, needed for PCRs above 15)
    static let pcrsStructInfoLong: UInt32 = 0x0000_0002
    /// `TSS_POLICY_USAGE`
    static let policyUsage: UInt32 = 0x0000_0001
    /// `TSS_SECRET_MODE_SHA1`: the secret is already the 20-byte authorization value.
    static let secretModeSHA1: UInt32 = 0x0000_1000
    /// `TSS_SECRET_MODE_PLAIN`: trousers hashes the secret with SHA-1.
    static let secretModePlain: UInt32 = 0x0000_1800
    /// `TSS_PS_TYPE_SYSTEM`
    static let psTypeSystem: UInt32 = 2

    /// `TSS_TSPATTRIB_ENCDATA_BLOB` / `TSS_TSPATTRIB_ENCDATABLOB_BLOB`: the TPM_STORED_DATA12.
    static let attribEncDataBlob: UInt32 = 0x0000_0008
    static let attribEncDataBlobBlob: UInt32 = 0x0000_0001
    /// `TSS_TSPATTRIB_KEY_BLOB` / `TSS_TSPATTRIB_KEYBLOB_BLOB`: the wrapped TPM_KEY12.
    static let attribKeyBlob: UInt32 = 0x0000_0040
    static let attribKeyBlobBlob: UInt32 = 0x0000_0008

    /// `TPM_LOC_ZERO | … | TPM_LOC_FOUR`: release at any locality.
    static let allLocalities: UInt32 = 0x1F

    /// `TSS_UUID_SRK` {0, 0, 0, 0, 0, {0, 0, 0, 0, 0, 1}}
    static var srkUUID: CTspi_UUID {
        CTspi_UUID(ulTimeLow: 0, usTimeMid: 0, usTimeHigh: 0, bClockSeqHigh: 0, bClockSeqLow: 0,
                   rgbNode: (0, 0, 0, 0, 0, 1))
    }

    /// `TSS_WELL_KNOWN_SECRET`: twenty zero bytes.
    static let wellKnownSecret = [UInt8](repeating: 0, count: 20)

    /// The error layer of a result (`ERROR_LAYER`: `TSS_LAYER_TPM` 0, `TDDL` 0x1000, `TCS` 0x2000, `TSP` 0x3000).
    static func layer(_ r: Result) -> UInt32 { r & 0xF000 }
    /// The error code without its layer (`ERROR_CODE`).
    static func code(_ r: Result) -> UInt32 { r & 0x0FFF }

    // Codes (without layer) the sealer explains.
    /// `TPM_E_AUTHFAIL`
    static let tpmAuthFail: UInt32 = 0x001
    /// `TPM_E_DEACTIVATED`, `TPM_E_DISABLED`
    static let tpmDeactivated: UInt32 = 0x006
    static let tpmDisabled: UInt32 = 0x007
    /// `TPM_E_NOSRK`
    static let tpmNoSRK: UInt32 = 0x012
    /// `TSS_E_COMM_FAILURE`, `TSS_E_NO_CONNECTION`, `TSS_E_CONNECTION_FAILED`, `…_BROKEN`
    static let eCommFailure: UInt32 = 0x011
    static let eNoConnection: UInt32 = 0x102
    static let eConnectionFailed: UInt32 = 0x103
    static let eConnectionBroken: UInt32 = 0x104
    /// `TSS_E_PS_KEY_NOTFOUND`
    static let ePSKeyNotFound: UInt32 = 0x020
}

/// libtspi.so.1 opened with `dlopen`, every function used resolved up front.
final class TSPILibrary: @unchecked Sendable {  // every stored property is a constant: the dlopen handle and C function pointers (not Sendable types)
    // The library's own thread safety is trousers' (one context per use here).

    typealias H = TSS.Handle
    typealias R = TSS.Result

    typealias ContextCreateFn = @convention(c) (UnsafeMutablePointer<H>) -> R
    typealias ContextCloseFn = @convention(c) (H) -> R
    typealias ContextConnectFn = @convention(c) (H, UnsafeMutablePointer<UInt16>?) -> R
    typealias ContextCreateObjectFn = @convention(c) (H, UInt32, UInt32, UnsafeMutablePointer<H>) -> R
    typealias ContextFreeMemoryFn = @convention(c) (H, UnsafeMutablePointer<UInt8>?) -> R
    typealias ContextGetTpmObjectFn = @convention(c) (H, UnsafeMutablePointer<H>) -> R
    typealias ContextLoadKeyByUUIDFn = @convention(c) (H, UInt32, CTspi_UUID, UnsafeMutablePointer<H>) -> R
    typealias GetPolicyObjectFn = @convention(c) (H, UInt32, UnsafeMutablePointer<H>) -> R
    typealias PolicySetSecretFn = @convention(c) (H, UInt32, UInt32, UnsafeMutablePointer<UInt8>?) -> R
    typealias PolicyAssignToObjectFn = @convention(c) (H, H) -> R
    typealias KeyCreateKeyFn = @convention(c) (H, H, H) -> R
    typealias KeyLoadKeyFn = @convention(c) (H, H) -> R
    typealias PcrCompositeSetPcrValueFn = @convention(c) (H, UInt32, UInt32, UnsafeMutablePointer<UInt8>) -> R
    typealias PcrCompositeSetPcrLocalityFn = @convention(c) (H, UInt32) -> R
    typealias DataSealFn = @convention(c) (H, H, UInt32, UnsafeMutablePointer<UInt8>, H) -> R
    typealias GetAttribDataFn = @convention(c) (H, UInt32, UInt32, UnsafeMutablePointer<UInt32>, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>) -> R
    typealias TpmGetRandomFn = @convention(c) (H, UInt32, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>) -> R
    typealias ErrorStringFn = @convention(c) (R) -> UnsafeMutablePointer<CChar>?
    typealias TpmPcrReadFn = @convention(c) (H, UInt32, UnsafeMutablePointer<UInt32>, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>) -> R

    let contextCreate: ContextCreateFn
    let contextClose: ContextCloseFn
    let contextConnect: ContextConnectFn
    let contextCreateObject: ContextCreateObjectFn
    let contextFreeMemory: ContextFreeMemoryFn
    let contextGetTpmObject: ContextGetTpmObjectFn
    let contextLoadKeyByUUID: ContextLoadKeyByUUIDFn
    let getPolicyObject: GetPolicyObjectFn
    let policySetSecret: PolicySetSecretFn
    let policyAssignToObject: PolicyAssignToObjectFn
    let keyCreateKey: KeyCreateKeyFn
    let keyLoadKey: KeyLoadKeyFn
    let pcrCompositeSetPcrValue: PcrCompositeSetPcrValueFn
    let pcrCompositeSetPcrLocality: PcrCompositeSetPcrLocalityFn
    let dataSeal: DataSealFn
    let getAttribData: GetAttribDataFn
    let tpmGetRandom: TpmGetRandomFn
    let errorString: ErrorStringFn
    let tpmPcrRead: TpmPcrReadFn

    /// The soname trousers installs (Debian `libtspi1`, Fedora `trousers-lib`).
    static let soname = "libtspi.so.1"

    private let handle: UnsafeMutableRawPointer

    /// The library, opened once per process.
    static let shared: Result<TSPILibrary, CodedError> = {
        do { return .success(try TSPILibrary(soname)) } catch let e as CodedError { return .failure(e) }
        catch { return .failure(.tpm12LibtspiMissing(String(describing: error))) }
    }()

    /// Opens `soname` (tests name a missing one to see the error).
    init(_ soname: String) throws {
        guard let h = dlopen(soname, RTLD_NOW | RTLD_LOCAL) else {
            throw CodedError.tpm12LibtspiMissing(soname)
        }
        handle = h
        var missing = [String]()
        func sym<T>(_ name: String, _: T.Type) -> T? {
            guard let p = dlsym(h, name) else { missing.append(name); return nil }
            return unsafeBitCast(p, to: T.self)
        }
        let a = sym("Tspi_Context_Create", ContextCreateFn.self)
        let b = sym("Tspi_Context_Close", ContextCloseFn.self)
        let c = sym("Tspi_Context_Connect", ContextConnectFn.self)
        let d = sym("Tspi_Context_CreateObject", ContextCreateObjectFn.self)
        let e = sym("Tspi_Context_FreeMemory", ContextFreeMemoryFn.self)
        let f = sym("Tspi_Context_GetTpmObject", ContextGetTpmObjectFn.self)
        let g = sym("Tspi_Context_LoadKeyByUUID", ContextLoadKeyByUUIDFn.self)
        let i = sym("Tspi_GetPolicyObject", GetPolicyObjectFn.self)
        let j = sym("Tspi_Policy_SetSecret", PolicySetSecretFn.self)
        let k = sym("Tspi_Policy_AssignToObject", PolicyAssignToObjectFn.self)
        let l = sym("Tspi_Key_CreateKey", KeyCreateKeyFn.self)
        let m = sym("Tspi_Key_LoadKey", KeyLoadKeyFn.self)
        let n = sym("Tspi_PcrComposite_SetPcrValue", PcrCompositeSetPcrValueFn.self)
        let o = sym("Tspi_PcrComposite_SetPcrLocality", PcrCompositeSetPcrLocalityFn.self)
        let p = sym("Tspi_Data_Seal", DataSealFn.self)
        let q = sym("Tspi_GetAttribData", GetAttribDataFn.self)
        let r = sym("Tspi_TPM_GetRandom", TpmGetRandomFn.self)
        let s = sym("Trspi_Error_String", ErrorStringFn.self)
        let t = sym("Tspi_TPM_PcrRead", TpmPcrReadFn.self)
        guard let a, let b, let c, let d, let e, let f, let g, let i, let j, let k, let l, let m,
              let n, let o, let p, let q, let r, let s, let t else {
            dlclose(h)
            throw CodedError.tpm12LibtspiMissing("\(soname) without \(missing.joined(separator: ", "))")
        }
        (contextCreate, contextClose, contextConnect, contextCreateObject, contextFreeMemory) = (a, b, c, d, e)
        (contextGetTpmObject, contextLoadKeyByUUID, getPolicyObject, policySetSecret) = (f, g, i, j)
        (policyAssignToObject, keyCreateKey, keyLoadKey, pcrCompositeSetPcrValue) = (k, l, m, n)
        (pcrCompositeSetPcrLocality, dataSeal, getAttribData, tpmGetRandom, errorString) = (o, p, q, r, s)
        tpmPcrRead = t
    }

    // Never closed: the library stays loaded for the life of the process (trousers registers no
    // destructors a dlclose would have to run, and a second seal reuses it).

    /// trousers' own text for a result code.
    func describe(_ r: R) -> String {
        guard let p = errorString(r) else { return "unknown error" }
        return String(cString: p)
    }
}
